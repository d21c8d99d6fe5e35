// The action group Azure Monitor alerts call: one webhook receiver to POST /api/alerts with the
// common alert schema (the app refuses any other schema). Two ways to authenticate:
//  - functionKey: the alert function's own key "azuremonitor" in the URL, read here with listKeys
//    when the deployment runs (infra/hooks/postdeploy.sh, after the code is deployed and the host
//    runs); it is never a parameter or an output.
//  - entra: a Secure Webhook (useAadAuth): Azure Monitor sends an Entra ID token for the app
//    registration, and the app validates it (api/entra.py). No key in the URL.
// API versions: Azure/bicep-types-az generated/monitor_1/microsoft.insights/2023-01-01/types.md
// (WebhookReceiver: useCommonAlertSchema, useAadAuth, objectId, identifierUri, tenantId);
// listkeys of Microsoft.Web/sites/functions@2024-04-01 from generated/web/microsoft.web/2024-04-01/types.md.

param name string
@maxLength(12)
param shortName string
param tags object = {}
param functionAppName string
@allowed(['functionKey', 'entra'])
param webhookAuth string = 'functionKey'
@description('Entra ID: object id of the app registration that exposes the ActionGroupsSecureWebhook role.')
param entraAppObjectId string = ''
@description('Entra ID: its application id URI (the token audience Azure Monitor asks for).')
param entraAppIdentifierUri string = ''

// The HTTP function serving POST /api/alerts (api/http.py) and its dedicated key.
var alertFunctionName = 'alert_webhook'
var alertKeyName = 'azuremonitor'
var alertRoute = 'api/alerts'

resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

var alertUrl = 'https://${app.properties.defaultHostName}/${alertRoute}'

// One action group, its one receiver chosen by a condition (a Bicep ternary, ARM's if()): ARM
// evaluates only the branch the condition picks, so listKeys runs only in functionKey mode. (Two
// resources with `if (...)` would not do: ARM evaluates list*() of a resource whose condition is
// false too, and fails when the key does not exist; Microsoft's "Conditional deployment in ARM
// templates" page.) The function listkeys response is a flat {key name: value} map, as the public
// templates reading `.default` from it show.
var useKey = webhookAuth == 'functionKey'

var keyedReceiver = {
  name: 'aml-rollout'
  serviceUri: '${alertUrl}?code=${listKeys(resourceId('Microsoft.Web/sites/functions', functionAppName, alertFunctionName), '2024-04-01')[alertKeyName]}'
  useCommonAlertSchema: true
  useAadAuth: false
}

var secureReceiver = {
  name: 'aml-rollout'
  serviceUri: alertUrl
  useCommonAlertSchema: true
  useAadAuth: true
  objectId: entraAppObjectId
  identifierUri: entraAppIdentifierUri
  tenantId: tenant().tenantId
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: name
  location: 'global'
  tags: tags
  properties: {
    groupShortName: shortName
    enabled: true
    webhookReceivers: [
      useKey ? keyedReceiver : secureReceiver
    ]
  }
}

output id string = actionGroup.id
output alertUrl string = alertUrl
