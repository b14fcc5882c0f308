// mimic-agent: the daemon on every MI host (and `mimic-agent local` for one host, no controller).
#include "agent/daemon/agent_main.h"

int main(int argc, char** argv) { return mimic::agent::AgentMain(argc, argv, nullptr); }
