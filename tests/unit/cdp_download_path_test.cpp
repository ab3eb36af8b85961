// The gateway's rewrite of CDP setDownloadBehavior: downloads stay in the
// session's downloads area, named as the page named them.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "gateway/cdp_download_path.hpp"

namespace kindling::gateway {
namespace {

const std::string kDir = "/home/browser/downloads";

nlohmann::json rewritten(const std::string& message) {
  auto out = rewrite_download_behavior(message, kDir);
  EXPECT_TRUE(out) << message;
  return out ? nlohmann::json::parse(*out) : nlohmann::json();
}

TEST(CdpDownloadPath, PlaywrightsCallIsPointedAtTheDownloadsArea) {
  auto call = rewritten(
      R"({"id":7,"method":"Browser.setDownloadBehavior","params":{"behavior":"allowAndName",)"
      R"("browserContextId":"ABC","downloadPath":"/tmp/playwright-artifacts-x","eventsEnabled":true}})");
  EXPECT_EQ(call["id"], 7);
  EXPECT_EQ(call["params"]["behavior"], "allow");
  EXPECT_EQ(call["params"]["downloadPath"], kDir);
  EXPECT_EQ(call["params"]["browserContextId"], "ABC");
  EXPECT_EQ(call["params"]["eventsEnabled"], true);
}

TEST(CdpDownloadPath, PageDomainAndFlatSessionsToo) {
  auto call = rewritten(R"({"id":1,"sessionId":"S1","method":"Page.setDownloadBehavior","params":{"behavior":"allow"}})");
  EXPECT_EQ(call["sessionId"], "S1");
  EXPECT_EQ(call["params"]["downloadPath"], kDir);
}

TEST(CdpDownloadPath, LeavesEverythingElseAlone) {
  for (const char* m : {
           R"({"id":1,"method":"Page.navigate","params":{"url":"https://x.test/setDownloadBehavior"}})",
           R"({"id":1,"method":"Browser.setDownloadBehavior","params":{"behavior":"deny"}})",
           R"({"id":1,"method":"Browser.setDownloadBehavior","params":{"behavior":"default"}})",
           R"({"id":1,"method":"Browser.setDownloadBehavior","params":{"behavior":"allow","downloadPath":"/home/browser/downloads"}})",
           R"({"id":1,"method":"Browser.setDownloadBehavior","params":{"behavior":7}})",
           R"({"id":1,"method":"Browser.setDownloadBehavior"})",
           R"(["setDownloadBehavior"])",
           "setDownloadBehavior {not json",
       })
    EXPECT_FALSE(rewrite_download_behavior(m, kDir)) << m;
}

}  // namespace
}  // namespace kindling::gateway
