# Warnings (errors with FORQ_WERROR, as in CI) and sanitizers for every forq target.

function(forq_target_options target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
    -Wnull-dereference -Wformat=2 -Wimplicit-fallthrough)
  if(FORQ_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

if(FORQ_SANITIZE)
  add_compile_options(-fsanitize=${FORQ_SANITIZE} -fno-omit-frame-pointer
    -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${FORQ_SANITIZE})
endif()
