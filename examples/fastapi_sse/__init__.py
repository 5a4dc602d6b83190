"""A production-shaped FastAPI service that streams Claude (or an OpenAI model) over server-sent events, with a
daily budget per user kept by costspan. See README.md beside this file."""
