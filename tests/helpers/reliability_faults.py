"""R2 device-fault scenarios (vtape fault injection): see docs/reliability.md."""
