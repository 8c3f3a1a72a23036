"""Stubs of the model APIs the real agent CLIs talk to (127.0.0.1 only, standard library
only), for the test tier that runs the real CLIs offline: anthropic.py (Claude Code),
gemini.py (Gemini CLI), openai.py (the OpenAI-family CLIs)."""
