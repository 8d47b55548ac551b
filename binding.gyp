{
  "targets": [
    {
      "target_name": "guest_memory",
      "sources": ["actors/guest/native/guest-memory.c"]
    }
  ]
}
