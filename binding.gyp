{
  "targets": [
    {
      "target_name": "guest_memory",
      "sources": ["actors/guest/native/guest-memory.c"]
    },
    {
      "target_name": "fd_passing",
      "sources": ["protocols/native/fd-passing.c"]
    }
  ]
}
