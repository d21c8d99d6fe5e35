// Alert wiring, deployed by the azd postdeploy hook (infra/hooks/postdeploy.sh) into the app's
// resource group once the code is deployed: the host must be running for listKeys to answer, and
// the function key must never pass through a parameter or an output. Creates the action group
// and attaches infra/modules/endpoint-alerts.bicep to each endpoint named in endpointNames.

param functionAppName string
param actionGroupName string
@maxLength(12)
param actionGroupShortName string = 'amlrollout'
param tags object = {}
@allowed(['functionKey', 'entra'])
param webhookAuth string = 'functionKey'
param entraAppObjectId string = ''
param entraAppIdentifierUri string = ''
@description('Subscription of the Azure ML workspace whose endpoints get alerts.')
param amlSubscriptionId string = subscription().subscriptionId
param amlResourceGroupName string
param amlWorkspaceName string
@description('Online endpoints to attach, separated by commas (empty: none).')
param endpointNames string = ''
@description('Log Analytics workspace resource id for AmlOnlineEndpointTrafficLog; empty: metric alerts only.')
param trafficLogWorkspaceId string = ''

module actionGroup 'modules/action-group.bicep' = {
  name: 'aml-rollout-action-group'
  params: {
    name: actionGroupName
    shortName: actionGroupShortName
    tags: tags
    functionAppName: functionAppName
    webhookAuth: webhookAuth
    entraAppObjectId: entraAppObjectId
    entraAppIdentifierUri: entraAppIdentifierUri
  }
}

var endpoints = empty(trim(endpointNames)) ? [] : split(replace(endpointNames, ' ', ''), ',')

module endpointAlerts 'modules/endpoint-alerts.bicep' = [for endpoint in endpoints: {
  name: take('aml-rollout-alerts-${endpoint}', 64)
  scope: resourceGroup(amlSubscriptionId, amlResourceGroupName)
  params: {
    workspaceName: amlWorkspaceName
    endpointName: endpoint
    actionGroupId: actionGroup.outputs.id
    tags: tags
    trafficLogWorkspaceId: trafficLogWorkspaceId
  }
}]

output actionGroupId string = actionGroup.outputs.id
