// The step library: one factory per catalogue step (one <step>.cc each), and the catalogue
// that maps a step name to its factory. The names come from common/config/catalogue.h.
#ifndef MIMIC_AGENT_STEPS_STEPS_H_
#define MIMIC_AGENT_STEPS_STEPS_H_

#include <memory>
#include <string>
#include <vector>

#include "agent/engine/step.h"
#include "common/config/catalogue.h"

namespace mimic::agent {

// std::unique_ptr<Step> NewPreflightStep(); ... one per catalogue entry.
#define MIMIC_DECLARE_STEP_FACTORY(name, factory) std::unique_ptr<Step> New##factory##Step();
MIMIC_STEP_CATALOGUE(MIMIC_DECLARE_STEP_FACTORY)
#undef MIMIC_DECLARE_STEP_FACTORY

// A new Step for a catalogue name, or nullptr when the name is unknown.
std::unique_ptr<Step> MakeStep(const std::string& name);
// Every name MakeStep knows, in catalogue order (== common::StepCatalogue()).
std::vector<std::string> KnownSteps();

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_STEPS_STEPS_H_
