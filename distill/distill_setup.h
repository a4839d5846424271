// What `distill ar` and `distill nat` share around their objectives (distill-internal): the
// target and the teacher store checked against each other, the student's vocabulary checks
// and starting weights, the --resume check of the objective's settings, and the TrainData /
// TrainJob fields every distilled drafter records.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/checkpoint.h"
#include "core/config.h"
#include "core/status.h"
#include "datasets/teacher_store.h"
#include "train/trainer.h"

namespace augur::distill {

struct DistillSetup {
  LoadedCheckpoint target;  // fp32 on `device`, eval mode, no gradients
  std::string target_fingerprint;
  std::shared_ptr<const TeacherStore> store;
  torch::Device device{torch::kCPU};
};

struct DistillSources {
  std::string command;  // "distill ar": the prefix of every error
  std::string target, teacher, device;
  int64_t seq_len = 0;
};

// Loads the target and opens the teacher store; refuses a store whose vocabulary size,
// tokenizer or generating target differ from the target's, and a --seq-len past the target's
// positions.
absl::StatusOr<DistillSetup> OpenTargetAndTeacher(const DistillSources& src);

// The student shares the target's vocabulary (and tokenizer, when `student_tokenizer` is known).
absl::Status CheckStudentVocab(const DistillSources& src, const DistillSetup& s, const std::string& student_spec,
                               const ModelConfig& student, const std::string& student_tokenizer = "");

// On --resume: the settings in `keys` fix what a step means, so `now` must agree with the
// saved run's (train_config.json "objective") on each.
absl::Status CheckResumedObjective(const std::string& command, const std::string& out_dir, const nlohmann::json& now,
                                   std::initializer_list<const char*> keys);

// The student's starting weights (TrainJob::init): none on resume or for a random init; a
// checkpoint's weights when --student is one (`init_checkpoint`, from ResolveStudentConfig);
// the target's embeddings, norm, head and `init_layers` with --init target. The checkpoint's
// tokenizer fingerprint goes to *student_tokenizer. Checks the vocabulary before copying.
struct StudentStart {
  LlamaModel init{nullptr};
  std::string tokenizer_fingerprint;
};
absl::StatusOr<StudentStart> StartStudent(const DistillSources& src, const DistillSetup& s,
                                          const std::string& student_spec, const std::string& init,
                                          const std::string& init_checkpoint, const ModelConfig& cfg,
                                          const std::vector<int64_t>& init_layers, bool resume, uint64_t seed);

// The data provenance of a run on the teacher store, and the job fields every distilled
// drafter shares: kind, target fingerprint, command line, `distill` settings, selection by
// held-out alpha, and QAT (fake-quantized linears, recorded in augur.json) when `qat` is set.
train::TrainData TeacherTrainData(const std::string& teacher, const DistillSetup& s);
void FillDrafterJob(const std::string& kind, const DistillSetup& s, const std::string& command_line,
                    const nlohmann::json& settings, const std::string& qat, train::TrainJob* job);

}  // namespace augur::distill
