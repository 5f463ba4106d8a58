"""One module per `fristed` subcommand."""
