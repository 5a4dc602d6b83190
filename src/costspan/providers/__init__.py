"""Provider adapters: what each SDK exposes, where its usage lives. Each module exports ``REQUIREMENT`` (the SDK
versions it instruments) and ``endpoints()``; the shared machinery never imports one directly."""
