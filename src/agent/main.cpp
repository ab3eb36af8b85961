// kindling-agent: PID 1 of every Kindling machine. See agent.hpp for the
// event loop and docs/agent-protocol.md for what the host can ask of it.
#include <cstdio>

#include "agent/agent.hpp"
#include "agent/agent_config.hpp"
#include "agent/agent_log.hpp"

int main(int argc, char** argv) {
  using namespace kindling::agent;
  const auto started_at = Clock::now();
  auto parsed = parse_agent_args(argc, argv);
  if (!parsed) {
    std::fprintf(stderr, "kindling-agent: %s\n%s", parsed.error().message.c_str(), agent_usage().c_str());
    return 2;
  }
  if (parsed->action == ParsedArgs::Action::kHelp) {
    std::fputs(agent_usage().c_str(), stdout);
    return 0;
  }
  if (parsed->action == ParsedArgs::Action::kVersion) {
    std::printf("kindling-agent %s (agent protocol %d)\n", kAgentVersion, kindling::agent_protocol::kVersion);
    return 0;
  }
  set_log_level(parsed->config.log_level);
  Agent agent(std::move(parsed->config), started_at);
  return agent.run();
}
