// Keeps a session's downloads in its downloads area whatever the CDP client
// asks. Playwright's connectOverCDP sends Browser.setDownloadBehavior with a
// download path of its own machine (/tmp/playwright-artifacts-*) and
// "allowAndName" (files named by GUID); inside the session's machine that
// path means nothing to the client, and the files would be invisible to
// GET /v1/sessions/{id}/files. So "allow" and "allowAndName" become "allow"
// into the downloads area, with the page's own file names; "deny" and
// "default" pass unchanged. The client still gets its download events.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kindling::gateway {

// The rewritten message when `message` (a client → browser CDP text frame)
// is a Browser/Page.setDownloadBehavior call that would download elsewhere
// than `downloads_dir`; nullopt leaves the message as it is.
std::optional<std::string> rewrite_download_behavior(std::string_view message, const std::string& downloads_dir);

}  // namespace kindling::gateway
