"""SCSI client layer: transports (vtape socket, Linux SG_IO), CDB codecs, sense decoding.

The same CDBs go over either transport, so what is tested against vtape is what runs on a real
drive or changer.
"""
