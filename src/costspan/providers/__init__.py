"""Provider adapters: what each SDK exposes, where its usage lives. Each module exports ``REQUIREMENT`` (the SDK
versions it instruments), ``PACKAGE`` (the SDK's import name, whose import patches it) and ``endpoints()``; the
shared machinery never imports one directly."""
