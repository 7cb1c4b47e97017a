# Generated at install time from proto/peakknn/v1/vector_search.proto by
# python/build_stubs.py (grpc_tools.protoc): vector_search_pb2.py and
# vector_search_pb2_grpc.py. Never edited, never checked in.
