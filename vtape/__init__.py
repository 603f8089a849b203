"""vtape: a virtual LTO tape library emulated at the SCSI command level.

File-backed cartridges, SSC tape drives and an SMC media changer, served by a
daemon over Unix sockets (one per device, see docs/vtape-protocol.md).
"""
