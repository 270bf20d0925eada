"""An instance that an Auto Scaling group owned is the group's to replace, not Terraform's."""

from __future__ import annotations

from aiops_agent.actions.registry import CATALOG, ActionDeps
from aiops_agent.aws.clients import AwsClients


async def test_instance_of_an_auto_scaling_group_is_not_restored(
    aws: AwsClients, unique: str
) -> None:
    ec2 = await aws.client("ec2")
    asg = await aws.client("autoscaling")
    image = (await ec2.describe_images(Owners=["amazon"]))["Images"][0]["ImageId"]
    await ec2.create_launch_template(
        LaunchTemplateName=f"lt-{unique}",
        LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro"},
    )
    await asg.create_auto_scaling_group(
        AutoScalingGroupName=f"web-{unique}",
        LaunchTemplate={"LaunchTemplateName": f"lt-{unique}"},
        MinSize=1,
        MaxSize=1,
        AvailabilityZones=["us-east-1a"],
    )
    groups = await asg.describe_auto_scaling_groups(AutoScalingGroupNames=[f"web-{unique}"])
    member = groups["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    lone = (await ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1))["Instances"][0]
    await ec2.terminate_instances(InstanceIds=[member, lone["InstanceId"]])

    restore = CATALOG.bind(ActionDeps(clients=aws)).get("iac.restore")
    reason = await restore.precheck({"resource_type": "ec2", "resource_id": member})
    assert reason is not None and f"web-{unique}" in reason
    assert (
        await restore.precheck({"resource_type": "ec2", "resource_id": lone["InstanceId"]}) is None
    )
    assert (
        await restore.precheck({"resource_type": "ec2", "resource_id": "i-0123456789abcdef0"})
        is None
    )
    assert await restore.precheck({"resource_type": "lambda", "resource_id": "fn"}) is None
