"""Drive and changer APIs over `tapefs.scsi`, plus device discovery."""
