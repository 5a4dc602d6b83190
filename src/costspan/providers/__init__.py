"""Provider adapters: what each SDK exposes, where its usage lives. Each module exports ``endpoints()`` and
``is_installed()``; the shared machinery never imports one directly."""
