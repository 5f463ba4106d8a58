"""The operator's `fristed` command and deployment files."""
