# Turns docs/openapi.yaml into a C++ string: the contract the service serves at
# GET /openapi.yaml is the one it was built with, and the route test reads the
# same bytes. The document is split into chunks of raw string literals because
# compilers cap the length of one literal (MSVC at 16 KiB; GCC does not, but a
# chunked literal costs nothing).
file(READ ${INPUT} yaml)
string(FIND "${yaml}" ")__ap_yaml__\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )__ap_yaml__\"")
endif()
string(LENGTH "${yaml}" size)
set(body "")
set(offset 0)
while(offset LESS size)
  string(SUBSTRING "${yaml}" ${offset} 8000 chunk)
  string(APPEND body "    R\"__ap_yaml__(${chunk})__ap_yaml__\"\n")
  math(EXPR offset "${offset} + 8000")
endwhile()
file(WRITE ${OUTPUT}.tmp
"// Generated from docs/openapi.yaml; do not edit.\n#include \"http/openapi.hpp\"\n\nnamespace ap::http {\n\nstd::string_view openapi_document() {\n  static constexpr char text[] =\n${body}    ;\n  return {text, sizeof text - 1};\n}\n\n} // namespace ap::http\n")
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
