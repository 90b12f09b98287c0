"""What tests, benchmarks and the local API share (never deployed): template.yaml read as
data, handlers imported as Lambda imports them, API Gateway events, a Lambda context, the
template's table and secret on any endpoint."""
