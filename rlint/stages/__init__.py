"""Stage commands: each reads its inputs and params, calls pure functions, writes outputs."""
