"""Where results go: Redis (latest risk, alerts stream and channel) and local files."""
