#include "control/session.hpp"

namespace wwan::control {

const char* to_string(SessionState s) {
  switch (s) {
    case SessionState::idle: return "idle";
    case SessionState::starting: return "starting";
    case SessionState::connecting: return "connecting";
    case SessionState::connected: return "connected";
    case SessionState::disconnected: return "disconnected";
    case SessionState::stopping: return "stopping";
    case SessionState::stopped: return "stopped";
    case SessionState::failed: return "failed";
  }
  return "?";
}

}  // namespace wwan::control
