"""The docker source kind: containers of one Docker engine, each read into a sub-source."""
