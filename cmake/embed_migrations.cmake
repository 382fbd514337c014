# Turns the SQL migration files into a C++ table: versioned files compiled into
# the binary, so a deployed service cannot run against a different set of files.
file(GLOB INPUTS ${INPUT_DIR}/*.sql)
list(SORT INPUTS)
set(body "")
foreach(path IN LISTS INPUTS)
  get_filename_component(name ${path} NAME)
  file(READ ${path} sql)
  string(APPEND body "  {\"${name}\", R\"__ap_sql__(${sql})__ap_sql__\"},\n")
endforeach()
file(WRITE ${OUTPUT}.tmp
"// Generated from persistence/migrations/*.sql; do not edit.\n#include \"persistence/migrations.hpp\"\n\nnamespace ap::persistence {\n\nconst std::vector<migration_source>& embedded_migrations() {\n  static const std::vector<migration_source> all = {\n${body}  };\n  return all;\n}\n\n} // namespace ap::persistence\n")
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
