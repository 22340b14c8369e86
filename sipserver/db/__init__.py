"""sipserver.db"""
