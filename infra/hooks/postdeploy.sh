#!/bin/sh
# azd postdeploy hook: wire Azure Monitor to the deployed app. Runs after `azd deploy` (and so
# after `azd up`), when the Functions host runs and can answer listKeys. Again at any time:
# `azd hooks run postdeploy` (after rotating the key, or to attach more endpoints).
#
# 1. functionKey mode: makes sure the alert function has its own key "azuremonitor" (created
#    with a random value when missing; the value is never printed or written anywhere).
# 2. Deploys infra/alerts.bicep into the app's resource group: the action group (whose webhook
#    URL gets the key through listKeys inside the deployment) and, for each endpoint in
#    AML_ROLLOUT_ALERT_ENDPOINTS (comma-separated), infra/modules/endpoint-alerts.bicep in the
#    workspace's resource group.
#
# Reads the azd environment (main.bicep's outputs plus what you `azd env set`):
#   AZURE_RESOURCE_GROUP AZURE_FUNCTION_NAME ACTION_GROUP_NAME ALERT_WEBHOOK_AUTH
#   AML_SUBSCRIPTION_ID AML_RESOURCE_GROUP AML_WORKSPACE_NAME LOG_ANALYTICS_WORKSPACE_ID
#   AML_ROLLOUT_ALERT_ENDPOINTS (optional) AML_ROLLOUT_TRAFFIC_LOG (optional, "true": diagnostic
#   setting + log search alert) ENTRA_APP_CLIENT_ID ENTRA_APP_OBJECT_ID ENTRA_APP_IDENTIFIER_URI (entra)
# Needs the Azure CLI (az), signed in to the same tenant as azd.
set -eu

need() {
  eval "value=\${$1:-}"
  if [ -z "$value" ]; then
    echo "postdeploy: $1 is not set in the azd environment (run azd provision first)" >&2
    exit 1
  fi
}
for name in AZURE_RESOURCE_GROUP AZURE_FUNCTION_NAME ACTION_GROUP_NAME AML_SUBSCRIPTION_ID \
            AML_RESOURCE_GROUP AML_WORKSPACE_NAME LOG_ANALYTICS_WORKSPACE_ID; do
  need "$name"
done

auth=${ALERT_WEBHOOK_AUTH:-functionKey}
alert_function=alert_webhook
key_name=azuremonitor

case "$auth" in
  functionKey)
    has_key=$(az functionapp function keys list --resource-group "$AZURE_RESOURCE_GROUP" \
      --name "$AZURE_FUNCTION_NAME" --function-name "$alert_function" \
      --query "contains(keys(@), '$key_name')" --output tsv)
    if [ "$has_key" != "true" ]; then
      echo "postdeploy: creating the $alert_function function key '$key_name'"
      az functionapp function keys set --resource-group "$AZURE_RESOURCE_GROUP" \
        --name "$AZURE_FUNCTION_NAME" --function-name "$alert_function" \
        --key-name "$key_name" --output none
    fi
    ;;
  entra)
    need ENTRA_APP_CLIENT_ID
    need ENTRA_APP_OBJECT_ID
    need ENTRA_APP_IDENTIFIER_URI
    ;;
  *)
    echo "postdeploy: ALERT_WEBHOOK_AUTH must be functionKey or entra, not '$auth'" >&2
    exit 1
    ;;
esac

traffic_log=""
if [ "${AML_ROLLOUT_TRAFFIC_LOG:-false}" = "true" ]; then
  traffic_log=$LOG_ANALYTICS_WORKSPACE_ID
fi

here=$(cd "$(dirname "$0")/.." && pwd)
echo "postdeploy: deploying the action group and alerts for: ${AML_ROLLOUT_ALERT_ENDPOINTS:-no endpoint yet}"
az deployment group create --resource-group "$AZURE_RESOURCE_GROUP" --name aml-rollout-alerts \
  --template-file "$here/alerts.bicep" \
  --parameters functionAppName="$AZURE_FUNCTION_NAME" actionGroupName="$ACTION_GROUP_NAME" \
               webhookAuth="$auth" entraAppObjectId="${ENTRA_APP_OBJECT_ID:-}" \
               entraAppIdentifierUri="${ENTRA_APP_IDENTIFIER_URI:-}" \
               amlSubscriptionId="$AML_SUBSCRIPTION_ID" amlResourceGroupName="$AML_RESOURCE_GROUP" \
               amlWorkspaceName="$AML_WORKSPACE_NAME" endpointNames="${AML_ROLLOUT_ALERT_ENDPOINTS:-}" \
               trafficLogWorkspaceId="$traffic_log" tags="{\"azd-env-name\": \"${AZURE_ENV_NAME:-}\"}" \
  --output none
echo "postdeploy: alerts wired to ${AZURE_FUNCTION_URL:-the app}/api/alerts ($auth)"
