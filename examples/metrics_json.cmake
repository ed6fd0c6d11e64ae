# Reading metrics.json in the checks: a metric must be a JSON number. A NaN is
# written as null, and CMake's if(x LESS y) is false for anything that is not
# a number, so without this a NaN metric would pass every "not below" check.
#   tr0n_json_number(<out> "${doc}" <member> <member|index>...)
function(tr0n_json_number out doc)
  string(JSON type ERROR_VARIABLE error TYPE "${doc}" ${ARGN})
  if(error)
    string(JOIN "." where ${ARGN})
    message(FATAL_ERROR "metrics: ${where} is missing (${error})")
  endif()
  if(NOT type STREQUAL "NUMBER")
    string(JOIN "." where ${ARGN})
    string(JSON value GET "${doc}" ${ARGN})
    message(FATAL_ERROR "metrics: ${where} is not a number (${type} ${value}): the job produced no valid value")
  endif()
  string(JSON value GET "${doc}" ${ARGN})
  set(${out} "${value}" PARENT_SCOPE)
endfunction()
