"""Storage: calls, legs, the channel-event log, agents, tokens and the outbox."""
