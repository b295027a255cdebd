"""The pipeline stages 01-06 (collect, insert calls, SFT, RL, evaluate, figures) and their pure cores."""
