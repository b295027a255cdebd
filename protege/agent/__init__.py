"""The agent: tools, the one agent loop, ask-expert baselines."""
