"""The built-in demo phone system: a Kazoo-compatible server and realistic call traffic."""
