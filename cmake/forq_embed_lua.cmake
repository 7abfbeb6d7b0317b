# forq_embed_lua(OUTPUT <header> NAMESPACE <ns> FILES <a.lua> ...)
# Generates a header holding each script's source as
#   inline constexpr std::string_view <file stem>_lua = R"forq_lua(...)forq_lua";
# regenerated whenever a .lua file changes. Scripts stay readable .lua files in the tree.
set(FORQ_EMBED_LUA_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/embed_lua.cmake)

function(forq_embed_lua)
  cmake_parse_arguments(ARG "" "OUTPUT;NAMESPACE" "FILES" ${ARGN})
  set(abs_files)
  foreach(f IN LISTS ARG_FILES)
    get_filename_component(abs ${f} ABSOLUTE)
    list(APPEND abs_files ${abs})
  endforeach()
  string(REPLACE ";" "|" joined "${abs_files}")
  add_custom_command(
    OUTPUT ${ARG_OUTPUT}
    COMMAND ${CMAKE_COMMAND} -DOUTPUT=${ARG_OUTPUT} -DNAMESPACE=${ARG_NAMESPACE}
            "-DFILES=${joined}" -P ${FORQ_EMBED_LUA_SCRIPT}
    DEPENDS ${abs_files} ${FORQ_EMBED_LUA_SCRIPT}
    COMMENT "Embedding Lua scripts into ${ARG_OUTPUT}"
    VERBATIM)
endfunction()

# forq_embed_files(OUTPUT <header> NAMESPACE <ns> BASE <dir> FILES <file> ...)
# The same for the dashboard's static files (cmake/embed_files.cmake): one table of path, content
# type, ETag and bytes, regenerated whenever a file changes.
set(FORQ_EMBED_FILES_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/embed_files.cmake)
function(forq_embed_files)
  cmake_parse_arguments(ARG "" "OUTPUT;NAMESPACE;BASE" "FILES" ${ARGN})
  set(abs_files)
  foreach(f IN LISTS ARG_FILES)
    get_filename_component(abs ${f} ABSOLUTE)
    list(APPEND abs_files ${abs})
  endforeach()
  get_filename_component(base ${ARG_BASE} ABSOLUTE)
  string(REPLACE ";" "|" joined "${abs_files}")
  add_custom_command(
    OUTPUT ${ARG_OUTPUT}
    COMMAND ${CMAKE_COMMAND} -DOUTPUT=${ARG_OUTPUT} -DNAMESPACE=${ARG_NAMESPACE} -DBASE=${base}
            "-DFILES=${joined}" -P ${FORQ_EMBED_FILES_SCRIPT}
    DEPENDS ${abs_files} ${FORQ_EMBED_FILES_SCRIPT}
    COMMENT "Embedding the dashboard's files into ${ARG_OUTPUT}"
    VERBATIM)
endfunction()
