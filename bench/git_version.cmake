# Writes OUT (a header defining QK_GIT_COMMIT) from `git describe` of SRC at build time, touching
# the file only when the commit changes, so result files name the code that produced them.
execute_process(COMMAND git -C "${SRC}" describe --always --dirty --abbrev=12
                OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE
                RESULT_VARIABLE rc ERROR_QUIET)
if(NOT rc EQUAL 0 OR commit STREQUAL "")
  set(commit "unknown (not a git checkout)")
endif()
# a copy of the tree whose .git is not the source's (the GPU hosts get one) is told the commit
if(NOT "$ENV{QK_GIT_COMMIT}" STREQUAL "")
  set(commit "$ENV{QK_GIT_COMMIT}")
endif()
set(text "#define QK_GIT_COMMIT \"${commit}\"\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT "${old}" STREQUAL "${text}")
  file(WRITE "${OUT}" "${text}")
endif()
