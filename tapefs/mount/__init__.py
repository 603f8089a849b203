"""`tapefs mount`: tape backups as a read-only file tree; reads load tapes and fetch chunks."""
