"""tapefs configuration: where configuration and state live, and the section-config file format."""
