# A newcomer's run of the `tr0n` tool on the Fashion-MNIST job's TorchScript
# models: train a translator with only the required flags, sample with the
# default start, steps, step size and noise, and score with the job's
# evaluation classifier. Fails if default refinement makes the translator's
# start worse, or if the prior start with the same flags is not far behind.
#   cmake -DTOOL=tr0n -DJOB=fashion_mnist -DMODELS=dir -DOUT=dir [-DPREFIX=quick_] -P check_tool_defaults.cmake
include(${CMAKE_CURRENT_LIST_DIR}/metrics_json.cmake)
file(MAKE_DIRECTORY "${OUT}")
set(labels 0,1,2,3,4,5,6,7,8,9)
set(models --generator ${MODELS}/${PREFIX}generator.ts.pt --encoder ${MODELS}/${PREFIX}aux_classifier.ts.pt)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

run(${TOOL} train ${models} --latent-dim 16 --condition-transform softmax --seed 0 --out ${OUT}/translator.pt)
# name|extra flag
set(runs "start|--steps=0" "tr0n|" "prior|--init=prior")
foreach(entry IN LISTS runs)
  string(REPLACE "|" ";" parts "${entry}")
  list(GET parts 0 name)
  set(flags "")
  list(LENGTH parts count)
  if(count GREATER 1)
    list(GET parts 1 flags)
  endif()
  run(${TOOL} sample ${models} --translator ${OUT}/translator.pt --labels ${labels} --samples-per-condition 30
      --energy cross_entropy --seed 0 ${flags} --out ${OUT}/${name}.pt)
  run(${JOB} --models-dir ${MODELS} ${QUICK} --score ${OUT}/${name}.pt --score-labels ${labels})
  tr0n_json_number(${name}_acc "${last_output}" accuracy)
  tr0n_json_number(${name}_div "${last_output}" diversity)
  set(${name}_json "${last_output}")
  message(STATUS "${name}: evaluation accuracy ${${name}_acc}, diversity ${${name}_div}")
endforeach()
if(tr0n_acc LESS start_acc)
  message(FATAL_ERROR "default refinement degraded the translator's start: ${start_acc} -> ${tr0n_acc}")
endif()
# 0.2 of accuracy, in counts of correctly classified samples (math() has integers only).
tr0n_json_number(tr0n_correct "${tr0n_json}" correct)
tr0n_json_number(prior_correct "${prior_json}" correct)
tr0n_json_number(samples "${tr0n_json}" samples)
math(EXPR gap "${tr0n_correct} - ${prior_correct}")
math(EXPR needed "${samples} / 5")
if(gap LESS needed)
  message(FATAL_ERROR "the prior start with the same flags is only ${gap} of ${samples} behind the translator start")
endif()
message(STATUS "default refinement: ${start_acc} -> ${tr0n_acc}; prior start ${prior_acc}")
