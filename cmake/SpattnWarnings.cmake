# spattn_warnings(target): the project's warning set on one target.
function(spattn_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
                         $<$<COMPILE_LANGUAGE:C>:-Wstrict-prototypes -Wmissing-prototypes>)
  if(SPATTN_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

function(spattn_warnings_list)
  foreach(t IN LISTS ARGN)
    spattn_warnings(${t})
  endforeach()
endfunction()
