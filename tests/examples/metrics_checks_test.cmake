# The metrics checks can fail: each is run on a small metrics.json that passes,
# then on copies with one metric made null (how a NaN is written), or the
# ordering broken, and must fail naming it.
#   cmake -DEXAMPLES=<tr0n>/examples -DBINARY=<scratch> -P metrics_checks_test.cmake
file(MAKE_DIRECTORY ${BINARY})
function(row method init steps acc agreement)
  set(r "{\"method\": \"${method}\", \"init\": \"${init}\", \"steps\": ${steps}, \"noise\": 0.1, ")
  string(APPEND r "\"class_accuracy\": ${acc}, \"attribute_agreement\": ${agreement}}")
  set(row "${r}" PARENT_SCOPE)
endfunction()
# A text job's metrics that pass: TR0N at T=10 beats the prior and FuseDream-style rows.
set(rows "")
foreach(spec "prior+T10|prior|10|0.30|0.40" "prior+T50|prior|50|0.50|0.40" "fusedream+T10|best_of|10|0.60|0.50"
             "tr0n+T10|translator_sample|10|0.90|0.80")
  string(REPLACE "|" ";" f "${spec}")
  row(${f})
  list(APPEND rows "${row}")
endforeach()
string(JOIN ", " rows_json ${rows})
set(text "{\"clip\": {\"zero_shot_accuracy\": 0.85}, \"real\": {\"attribute_chance\": 0.33}, \"rows\": [${rows_json}]}")

function(expect name script doc outcome)  # outcome: PASS, or text the failure must contain
  file(WRITE ${BINARY}/${name}.json "${doc}")
  execute_process(COMMAND ${CMAKE_COMMAND} -DMETRICS=${BINARY}/${name}.json -DMIN_ZERO_SHOT=0.7 -DMIN_ACCURACY=0.75
                          -P ${EXAMPLES}/${script}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(outcome STREQUAL "PASS")
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "${name}: ${script} failed on metrics that pass:\n${err}")
    endif()
  else()
    string(FIND "${err}" "${outcome}" at)
    if(rc EQUAL 0 OR at EQUAL -1)
      message(FATAL_ERROR "${name}: ${script} should fail with '${outcome}' (exit ${rc}):\n${out}${err}")
    endif()
  endif()
  message(STATUS "${name}: as expected")
endfunction()

expect(text_ok check_text_metrics.cmake "${text}" PASS)
string(JSON bad SET "${text}" rows 3 class_accuracy null)
expect(text_nan_accuracy check_text_metrics.cmake "${bad}" "rows.3.class_accuracy is not a number")
string(JSON bad SET "${text}" rows 3 attribute_agreement null)
expect(text_nan_agreement check_text_metrics.cmake "${bad}" "rows.3.attribute_agreement is not a number")
string(JSON bad SET "${text}" clip zero_shot_accuracy null)
expect(text_nan_zero_shot check_text_metrics.cmake "${bad}" "clip.zero_shot_accuracy is not a number")
string(JSON bad SET "${text}" rows 1 class_accuracy null)
expect(text_nan_prior check_text_metrics.cmake "${bad}" "rows.1.class_accuracy is not a number")
string(JSON bad SET "${text}" rows 1 class_accuracy 0.95)
expect(text_order check_text_metrics.cmake "${bad}" "does not beat the prior start")
string(JSON bad REMOVE "${text}" real)
expect(text_missing check_text_metrics.cmake "${bad}" "real.attribute_chance is missing")

set(fashion "{\"rows\": [
  {\"init\": \"prior\", \"steps\": 10, \"eval_accuracy\": 0.3, \"mean_energy\": 2.0},
  {\"init\": \"translator_sample\", \"steps\": 10, \"eval_accuracy\": 0.8, \"mean_energy\": 0.5}]}")
expect(fashion_ok check_fashion_metrics.cmake "${fashion}" PASS)
string(JSON bad SET "${fashion}" rows 1 eval_accuracy null)
expect(fashion_nan_accuracy check_fashion_metrics.cmake "${bad}" "rows.1.eval_accuracy is not a number")
string(JSON bad SET "${fashion}" rows 0 mean_energy null)
expect(fashion_nan_energy check_fashion_metrics.cmake "${bad}" "rows.0.mean_energy is not a number")
string(JSON bad SET "${fashion}" rows 1 mean_energy 3.0)
expect(fashion_order check_fashion_metrics.cmake "${bad}" "is not below the prior start's")
