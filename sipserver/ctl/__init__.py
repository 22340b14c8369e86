"""sipserver.ctl"""
