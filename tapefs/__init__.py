"""tapefs: tape backup in the model of Proxmox Backup Server."""
