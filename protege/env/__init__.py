"""Environments: the sandbox, local and Docker workspaces, grading (the reward), swebench harnesses."""
