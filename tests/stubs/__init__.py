"""Stubs of the model APIs the real agent CLIs talk to (127.0.0.1 only, standard library
only), for the test tier that runs the real CLIs offline (tests/agent_clis/real/):
anthropic.py (Claude Code), gemini.py (Gemini CLI), openai.py (the OpenAI-family CLIs),
augment.py (auggie); realcli.py finds and runs the CLIs; samples/ holds what they
printed (make_samples.py, make_new_samples.py, samples/limit-make.py)."""
