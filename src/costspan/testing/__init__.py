"""A local server speaking the OpenAI and Anthropic wire formats, for tests and the demo: no API key needed.

```python
with ProviderServer() as server:
    server.push(Reply(text="Hi", chunks=3))
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-test")
```
"""

from .reply import Reply
from .server import ProviderServer
from .wire import RecordedRequest

__all__ = ["ProviderServer", "RecordedRequest", "Reply"]
