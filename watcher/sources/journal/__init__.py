"""The journal source kind: a systemd unit's journal on gateways over SSH, or locally."""
