// aml-rollout on Azure: `azd up` provisions this (subscription scope), deploys the code, then
// runs infra/hooks/postdeploy.sh, which deploys infra/alerts.bicep (action group + endpoint alerts).
// What it creates, the roles and the costs: README "Deploy to Azure" and docs/azure.md.
// API versions: Azure/bicep-types-az generated/resources_11/microsoft.resources/2024-03-01/types.md,
// generated/msi/microsoft.managedidentity/2023-01-31/types.md; modules name their own.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment: names the resource group and seeds every resource name.')
param environmentName string

@minLength(1)
@description('Region of the app (one offering Flex Consumption: `az functionapp list-flexconsumption-locations`).')
@metadata({ azd: { type: 'location' } })
param location string

@description('Subscription of the Azure ML workspace the app manages (empty: this subscription).')
param amlSubscriptionId string = ''
@description('Resource group of the Azure ML workspace the app manages.')
param amlResourceGroupName string
@description('Name of the Azure ML workspace the app manages.')
param amlWorkspaceName string
@description('More managed workspaces, "subscription/resource-group/workspace" separated by commas. Their roles are not granted here (docs/azure.md).')
param extraWorkspaces string = ''
@description('Let rollouts use metrics_source "log_analytics": Log Analytics Reader on the workspace and its id in the app settings.')
param logAnalyticsMetrics bool = false
@description('Grant what the deployment lifecycle needs: delete deployments, read their logs, inline environments, autoscale settings, and (on the workspace\'s subscription) quota, VM sizes and operation status.')
param lifecycleActions bool = false
@description('How Azure Monitor authenticates to POST /api/alerts: a function key in the URL, or an Entra ID token (Secure Webhook).')
@allowed(['functionKey', 'entra'])
param alertWebhookAuth string = 'functionKey'
@description('entra only: application (client) id of the app registration exposing the ActionGroupsSecureWebhook role.')
param entraAppClientId string = ''
@description('entra only: its application id URI (e.g. api://aml-rollout-alerts).')
param entraAppIdentifierUri string = ''
@description('Durable Functions backend: Azure Storage (default, the app\'s storage account) or a Durable Task Scheduler.')
@allowed(['azureStorage', 'durableTaskScheduler'])
param durableBackend string = 'azureStorage'
@description('Always-ready instances for the "durable" group (0: scale to zero; 1: no cold start between an alert and its rollback).')
@minValue(0)
@maxValue(2)
param durableAlwaysReady int = 1

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = '${abbrs.webSitesFunctions}aml-rollout-${resourceToken}'
var deploymentContainerName = 'app-package-${take(resourceToken, 7)}'
var amlSubscription = empty(amlSubscriptionId) ? subscription().subscriptionId : amlSubscriptionId
// The Durable task hub name: host.json's extensions.durableTask.hubName.
var taskHubName = 'AmlRollout'
var useScheduler = durableBackend == 'durableTaskScheduler'
var useEntra = alertWebhookAuth == 'entra'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}aml-rollout-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    appInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

module scheduler 'modules/durable-task-scheduler.bicep' = if (useScheduler) {
  name: 'durable-task-scheduler'
  scope: rg
  params: {
    name: '${abbrs.durableTaskSchedulers}${resourceToken}'
    location: location
    tags: tags
    taskHubName: taskHubName
  }
}

module appRbac 'modules/app-rbac.bicep' = {
  name: 'app-rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    logAnalyticsName: monitoring.outputs.logAnalyticsName
    logAnalyticsMetrics: logAnalyticsMetrics
    schedulerName: useScheduler ? scheduler.outputs.name : ''
  }
}

module amlAccess 'modules/aml-access.bicep' = {
  name: 'aml-rollout-access-${resourceToken}'
  scope: resourceGroup(amlSubscription, amlResourceGroupName)
  params: {
    principalId: identity.outputs.principalId
    workspaceName: amlWorkspaceName
    lifecycleActions: lifecycleActions
  }
}

// Quota, VM sizes and operation status live under the subscription, not the workspace.
module amlLocationAccess 'modules/aml-location-access.bicep' = if (lifecycleActions) {
  name: 'aml-rollout-location-access-${resourceToken}'
  scope: subscription(amlSubscription)
  params: {
    principalId: identity.outputs.principalId
  }
}

// What settings.py reads. Left to the app's defaults: AML_ROLLOUT_METRICS_LAG_SECONDS,
// AML_ROLLOUT_MAX_ALERT_BYTES, ARM_CLOUD_METADATA_URL (only for clouds other than the public three),
// AML_ROLLOUT_NOTIFY (default notification targets: their URLs can hold secrets, so set them yourself).
var appSettings = union({
  AML_ROLLOUT_SUBSCRIPTION_ID: amlSubscription
  AML_ROLLOUT_RESOURCE_GROUP: amlResourceGroupName
  AML_ROLLOUT_WORKSPACE_NAME: amlWorkspaceName
  AML_ROLLOUT_CLOUD: environment().name
  AML_ROLLOUT_LOG_ANALYTICS_RESOURCE_ID: monitoring.outputs.logAnalyticsId
}, empty(extraWorkspaces) ? {} : {
  AML_ROLLOUT_EXTRA_WORKSPACES: extraWorkspaces
}, logAnalyticsMetrics ? {
  AML_ROLLOUT_LOG_ANALYTICS_WORKSPACE_ID: monitoring.outputs.logAnalyticsCustomerId
} : {}, useEntra ? {
  AML_ROLLOUT_ALERT_AUTH_TENANT_ID: tenant().tenantId
  AML_ROLLOUT_ALERT_AUTH_AUDIENCE: '${entraAppClientId},${entraAppIdentifierUri}'
} : {})

// Durable Task Scheduler: its identity-based connection, and host.json's storageProvider
// overridden through app settings (AzureFunctionsJobHost__ paths) so one host.json serves both.
var durableSettings = useScheduler ? {
  DURABLE_TASK_SCHEDULER_CONNECTION_STRING: 'Endpoint=${scheduler.outputs.endpoint};Authentication=ManagedIdentity;ClientID=${identity.outputs.clientId}'
  AzureFunctionsJobHost__extensions__durableTask__storageProvider__type: 'azureManaged'
  AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName: 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING'
} : {}

module app 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    appInsightsName: monitoring.outputs.appInsightsName
    appSettings: appSettings
    durableSettings: durableSettings
    durableAlwaysReady: durableAlwaysReady
  }
  dependsOn: [
    appRbac
  ]
}

// azd reads these into the environment (.azure/<env>/.env); the postdeploy hook uses them.
// None is a secret.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = app.outputs.name
output AZURE_FUNCTION_URL string = 'https://${app.outputs.defaultHostName}'
output AML_ROLLOUT_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AML_SUBSCRIPTION_ID string = amlSubscription
output AML_RESOURCE_GROUP string = amlResourceGroupName
output AML_WORKSPACE_NAME string = amlWorkspaceName
output LOG_ANALYTICS_WORKSPACE_ID string = monitoring.outputs.logAnalyticsId
output ALERT_WEBHOOK_AUTH string = alertWebhookAuth
output ACTION_GROUP_NAME string = '${abbrs.insightsActionGroups}aml-rollout-${resourceToken}'
