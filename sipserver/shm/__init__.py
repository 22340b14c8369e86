"""sipserver.shm"""
