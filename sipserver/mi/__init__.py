"""sipserver.mi"""
