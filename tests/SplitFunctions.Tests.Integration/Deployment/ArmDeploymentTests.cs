using System.Text.Json.Nodes;

namespace SplitFunctions.Tests.Deployment;

/// <summary>
/// The simulated deployment the deployment tests rely on, on a small hand-written template: what it evaluates must be
/// what ARM evaluates, and what only Azure knows must stay an expression rather than become a guess.
/// </summary>
public sealed class ArmDeploymentTests
{
    private static readonly JsonObject Template = JsonNode.Parse("""
        {
          "languageVersion": "2.0",
          "parameters": {
            "names": { "type": "array" },
            "on": { "type": "bool", "defaultValue": true },
            "prefix": { "type": "string", "defaultValue": "[format('{0}-{1}', 'p', length(parameters('names')))]" }
          },
          "variables": { "suffix": "[[literal]" },
          "resources": {
            "account": {
              "type": "Microsoft.Storage/storageAccounts",
              "apiVersion": "2024-01-01",
              "name": "[take(format('{0}{1}', parameters('prefix'), uniqueString(resourceGroup().id)), 10)]"
            },
            "queues": {
              "copy": { "name": "queues", "count": "[length(parameters('names'))]" },
              "type": "Microsoft.Storage/storageAccounts/queueServices/queues",
              "apiVersion": "2024-01-01",
              "name": "[format('{0}/default/{1}', parameters('prefix'), parameters('names')[copyIndex()])]",
              "properties": {
                "metadata": {
                  "copy": [ { "name": "items", "count": 2, "input": "[format('{0}{1}', parameters('names')[copyIndex()], copyIndex('items'))]" } ]
                }
              }
            },
            "maybe": {
              "condition": "[and(parameters('on'), not(empty(parameters('names'))))]",
              "type": "Microsoft.Insights/components",
              "apiVersion": "2020-02-02",
              "name": "[concat('c', variables('suffix'), string(parameters('on')))]",
              "properties": { "key": "[reference('account').primaryEndpoints.blob]", "other": "[someFutureFunction('x', 1)]" }
            }
          },
          "outputs": {
            "endpoint": { "type": "string", "value": "[reference('account').primaryEndpoints.queue]" },
            "count": { "type": "int", "value": "[length(parameters('names'))]" }
          }
        }
        """)!.AsObject();

    private static ArmDeployment Deploy(bool on, params string[] names) =>
        ArmDeployment.Of(Template, new Dictionary<string, JsonNode?> { ["names"] = new JsonArray(names.Select(n => (JsonNode?)n).ToArray()), ["on"] = on });

    [Fact]
    public void Parameters_defaults_loops_and_property_loops_are_evaluated()
    {
        var deployment = Deploy(true, "a", "b");
        var account = deployment.Single("Microsoft.Storage/storageAccounts");
        account.Name.Should().StartWith("p-2").And.HaveLength(10, "take() of the prefix and a 13-character uniqueString");
        deployment.Created("Microsoft.Storage/storageAccounts/queueServices/queues").Select(q => q.Name).Should().Equal("p-2/default/a", "p-2/default/b");
        deployment.Created("Microsoft.Storage/storageAccounts/queueServices/queues")[1]["properties.metadata.items"]!.AsArray()
            .Select(i => i!.GetValue<string>()).Should().Equal("b0", "b1");
        deployment.Outputs["count"]!.GetValue<long>().Should().Be(2);
    }

    [Fact]
    public void Conditions_decide_and_strings_follow_ARM()
    {
        var maybe = Deploy(true, "a").Single("Microsoft.Insights/components");
        maybe.Name.Should().Be("c[literal]True", "`[[` escapes a literal `[`, and string(true) is True");
        Deploy(false, "a").Created("Microsoft.Insights/components").Should().BeEmpty();
        Deploy(true).Created("Microsoft.Insights/components").Should().BeEmpty();
    }

    [Fact]
    public void What_only_Azure_knows_stays_an_expression()
    {
        var deployment = Deploy(true, "a");
        var accountId = ArmDeployment.ResourceId("Microsoft.Storage/storageAccounts", deployment.Single("Microsoft.Storage/storageAccounts").Name);
        var maybe = deployment.Single("Microsoft.Insights/components");
        maybe["properties.key"]!.GetValue<string>().Should().Be($"[reference('{accountId}').primaryEndpoints.blob]");
        maybe["properties.other"]!.GetValue<string>().Should().Be("[someFutureFunction('x', 1)]", "an unknown function is never guessed");
        deployment.Outputs["endpoint"]!.GetValue<string>().Should().Be($"[reference('{accountId}').primaryEndpoints.queue]");
    }
}
