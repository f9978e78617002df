"""The REST API: thin Starlette routes over `NoteService` and the store."""
